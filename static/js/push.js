// The push channel's browser side (see oms/push.py). One subscription per topic:
//   OMS.push.subscribe("blotter", (event) => ..., {onState: (text) => ...})
// With Redis the page holds one Server-Sent Events stream; without it (the
// embedded default), or when the stream is refused, it polls once a second.
// Either way the handler gets each event's JSON payload; {reset: true} means
// "you may have missed some: refresh what you show".
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="oms-push"]');
  const config = meta
    ? { mode: meta.dataset.mode, stream: meta.dataset.stream, poll: meta.dataset.poll }
    : { mode: "poll", stream: "/push/stream/", poll: "/push/poll/" };

  function poll(topic, handler, onState) {
    let cursor = null;
    let failures = 0;
    async function once() {
      const url = config.poll + "?topic=" + encodeURIComponent(topic) +
        (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(String(response.status));
        const body = await response.json();
        if (failures > 0) handler({ reset: true });
        failures = 0;
        cursor = body.cursor;
        body.events.forEach(handler);
        onState("live (polling)", "poll");
      } catch (error) {
        failures += 1;
        onState("reconnecting…", "down");
      }
      setTimeout(once, 1000);
    }
    once();
  }

  function stream(topic, handler, onState) {
    let opened = false;
    const source = new EventSource(config.stream + "?topic=" + encodeURIComponent(topic));
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.open) {
        if (opened) handler({ reset: true }); // a reconnect: the replay may not say all
        opened = true;
        onState("live", "sse");
        return;
      }
      handler(event);
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // refused (no stream on this server): poll instead
        if (!opened) { poll(topic, handler, onState); return; }
        onState("reconnecting…", "down");
      } else {
        onState("reconnecting…", "down");
      }
    };
  }

  window.OMS = window.OMS || {};
  window.OMS.push = {
    mode: config.mode,
    subscribe(topic, handler, options) {
      const onState = (options && options.onState) || (() => {});
      if (config.mode === "sse" && window.EventSource) stream(topic, handler, onState);
      else poll(topic, handler, onState);
    },
  };
})();
