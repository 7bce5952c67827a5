"""The fault drill: bench/faults/drill.py, with its helpers (servers, LLM, audit)."""
