"""llm-perf-opt: where the time, FLOPs and memory of DeepSeek-OCR inference go."""

__version__ = "0.1.0"
