"""Stores: Redis, the event bus, the vector stores and history stores mem0 runs on.

mem0 reads two environment variables once, when it is first imported: its telemetry (which
posts events and fetches notices over the network) stays off, and it writes nothing under the
home directory. And its import must not pull in qdrant_client (stores/mem0_qdrant_stand_in.py).
Every import of mem0 in this project happens after this package is imported.
"""

import os
import tempfile

from stores import mem0_qdrant_stand_in

os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", os.path.join(tempfile.gettempdir(), "maas-mem0"))
mem0_qdrant_stand_in.install()
