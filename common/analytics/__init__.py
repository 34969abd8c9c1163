"""What is computed from the feed: indicators, Black-Scholes greeks, option-chain selection and option rows."""
