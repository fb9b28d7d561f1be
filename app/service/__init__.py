"""Use cases: a validated request in, a response payload out; nothing here knows HTTP.

- ``limits``: every configured limit, checked from a request's sizes before any numpy work,
  and the work and memory estimates admission control uses;
- ``conversion``: request models to float64 (or float32) arrays and engine objects;
- ``payloads``: engine results to dicts typed as the response models;
- ``stop``: the running request's stop flag (set when its client goes away);
- one module per use case: ``forward``, ``loss``, ``gradients``, ``gradcheck``, ``explain``,
  ``diagram``, ``train``.
"""
