"""The reference MoE trainer that reads curate's shards."""
