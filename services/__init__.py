"""Services: the product (short- and long-term memory), with no knowledge of GraphQL."""

import stores  # noqa: F401  (configures mem0's environment before any service imports mem0)
