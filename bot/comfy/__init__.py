"""ComfyUI wire protocol: HTTP client, WebSocket events and stream; knows nothing of Discord."""
