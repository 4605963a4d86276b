"""The checks of the assessment, one module each, run in the order of
:data:`modelshield.core.assess_settings.CHECKS`. Each exposes ``run(ctx: Context) -> None``."""
