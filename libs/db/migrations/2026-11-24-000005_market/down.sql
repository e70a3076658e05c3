DROP TABLE price_points; DROP TABLE sales; DROP TABLE listings; DROP TABLE moments; DROP TABLE market_sources;
