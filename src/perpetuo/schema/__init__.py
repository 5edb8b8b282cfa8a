"""Internal request, response and error types shared by every layer."""
