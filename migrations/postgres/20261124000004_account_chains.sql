-- Accounts on any chain: a user's address belongs to a chain family, and each family
-- has its own normal form (Meridian checks checksums and keys before it writes).
ALTER TABLE users ADD COLUMN chain text NOT NULL DEFAULT 'evm'
    CONSTRAINT users_chain_known CHECK (chain IN ('evm', 'stellar', 'casper'));

ALTER TABLE users DROP CONSTRAINT users_address_format;
ALTER TABLE users ADD CONSTRAINT users_address_format CHECK (
       (chain = 'evm' AND address ~ '^0x[0-9a-f]{40}$')
    OR (chain = 'stellar' AND address ~ '^G[A-Z2-7]{55}$')
    OR (chain = 'casper' AND address ~ '^(01[0-9a-f]{64}|02[0-9a-f]{66})$')
);
