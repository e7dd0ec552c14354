"""Stores: Redis, the event bus, the vector stores and history stores mem0 runs on.

mem0 reads two environment variables once, when it is first imported: its telemetry (which
posts events and fetches notices over the network) stays off, and it writes nothing under the
home directory. Every import of mem0 in this project happens after this package is imported.
"""

import os
import tempfile

os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", os.path.join(tempfile.gettempdir(), "maas-mem0"))
