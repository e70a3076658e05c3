DROP TABLE access_tokens; DROP TABLE wallets; DROP TABLE users;
