"""The ASGI application, its configuration and start-up."""
