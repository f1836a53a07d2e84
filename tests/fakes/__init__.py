"""Protocol-faithful fakes of ComfyUI and Discord for tests."""
