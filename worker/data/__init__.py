"""Historical market data: candles downloaded from exchanges into the candle store."""
