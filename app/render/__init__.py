"""Pictures: SVG drawings of networks and loss curves (standard library only)."""
