from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        # Trading sits below compliance: it asks the pre-trade check through its seam.
        from trading import pretrade

        from .services.pretrade import checker

        pretrade.register(checker)
