"""The media types of the wire contract: what a body is sent as and what an answer comes back as."""

JSON = "application/json"
NDJSON = "application/x-ndjson"  # /v1/train's stream: one JSON document per line
SVG = "image/svg+xml"  # pictures: /v1/diagram, /v1/train/plot, /v1/graph laid out by Graphviz
DOT = "text/vnd.graphviz"  # /v1/graph as Graphviz's DOT language (IANA's type for it)
SAFETENSORS = "application/x-safetensors"  # arrays as raw little-endian bytes (app.schemas.safetensors)
