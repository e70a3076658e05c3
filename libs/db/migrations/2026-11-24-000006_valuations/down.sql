DROP TABLE valuation_factors; DROP TABLE valuations;
