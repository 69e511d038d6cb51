"""pytest-servecert: serving-state safety certification for LLM serving stacks, as pytest tests."""

__version__ = "0.1.0"
