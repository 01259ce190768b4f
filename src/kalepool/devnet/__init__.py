"""The devnet: a local Stellar network running the KALE farm."""
