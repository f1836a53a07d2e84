"""ComfyCord: a ComfyUI image-generation server in the hands of a Discord community."""

__version__ = "0.1.0"
