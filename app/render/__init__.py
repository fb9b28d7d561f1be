"""Pictures: SVG drawings of networks and loss curves (standard library only), and a computation
graph as Graphviz DOT (``graph_dot``) laid out as SVG by Graphviz's ``dot`` when it is installed (``graphviz``)."""
