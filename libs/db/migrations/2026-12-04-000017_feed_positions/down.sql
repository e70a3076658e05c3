DROP TABLE feed_positions;
