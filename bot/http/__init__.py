"""`comfycord serve`: app, routes, service state, job board, errors, OpenAPI."""
