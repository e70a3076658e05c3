DROP TABLE risk_alerts; DROP TABLE emergency_stops; DROP TABLE spending; DROP TABLE holds; DROP TABLE budget_limit_changes; DROP TABLE budget_limits;
