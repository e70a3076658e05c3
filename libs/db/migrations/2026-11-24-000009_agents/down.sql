DROP TABLE decisions; DROP TABLE agent_runs;
