"""Build attacked and clean test models: data, trigger/target patterns, backdoor families, training."""
