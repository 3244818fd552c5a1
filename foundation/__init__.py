"""The bottom layer: what every app may import and that imports no app of ours.

The one Redis client, cross-process cache invalidation and the API conventions (error shape, cursor pagination,
rate limits, downloads). The import contract in pyproject.toml keeps it below every app.
"""
