"""FastAPI app, auth, live events, WebRTC, the web console and the CLI entry point."""
