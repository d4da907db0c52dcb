"""The Hugging Face Hub as a model source and a publishing target, through huggingface_hub."""
