"""Workflows: loading files and sidecars, tracing the graph, detecting patch points, validation."""
