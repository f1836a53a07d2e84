"""`comfycord run` and `comfycord check`: argument plan, the run itself, progress view, doctor."""
