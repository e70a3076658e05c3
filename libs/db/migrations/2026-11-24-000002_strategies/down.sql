DROP TABLE strategy_outcomes; DROP TABLE strategy_performance; DROP TABLE strategies; DROP TABLE strategy_templates;
