-- The tenants store at schema version 5 (SQLite), as the numbered migration runner created it
-- (the last sixpod before Alembic).
CREATE TABLE revision (
	id INTEGER NOT NULL, 
	value BIGINT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE apps (
	name VARCHAR(63) NOT NULL, 
	owner VARCHAR(200) NOT NULL, 
	shard_seed INTEGER NOT NULL, 
	settings TEXT NOT NULL, 
	revision BIGINT NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE vips (
	address VARCHAR(39) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	reason VARCHAR(200) NOT NULL, 
	revision BIGINT NOT NULL, 
	PRIMARY KEY (address)
);
CREATE TABLE nodes (
	name VARCHAR(63) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	reason VARCHAR(200) NOT NULL, 
	revision BIGINT NOT NULL, 
	PRIMARY KEY (name)
);
CREATE TABLE outbox (
	revision BIGINT NOT NULL, 
	op TEXT NOT NULL, 
	forced BOOLEAN NOT NULL, 
	committed_at FLOAT NOT NULL, 
	PRIMARY KEY (revision)
);
CREATE TABLE publisher (
	id INTEGER NOT NULL, 
	holder VARCHAR(200) NOT NULL, 
	fence BIGINT NOT NULL, 
	lease_until FLOAT NOT NULL, 
	forced_through BIGINT NOT NULL, 
	epoch VARCHAR(32) DEFAULT '' NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE certs (
	domain VARCHAR(253) NOT NULL, 
	chain TEXT NOT NULL, 
	"key" TEXT NOT NULL, 
	info TEXT NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	not_after FLOAT NOT NULL, 
	stored_at FLOAT NOT NULL, 
	PRIMARY KEY (domain)
);
CREATE TABLE acme_challenges (
	token VARCHAR(128) NOT NULL, 
	key_authorization VARCHAR(300) NOT NULL, 
	domain VARCHAR(253) NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (token)
);
CREATE TABLE acme (
	domain VARCHAR(253) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	error VARCHAR(500) NOT NULL, 
	failures INTEGER NOT NULL, 
	next_attempt FLOAT NOT NULL, 
	not_after FLOAT, 
	last_success FLOAT, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (domain)
);
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);
CREATE TABLE domains (
	name VARCHAR(253) NOT NULL, 
	app VARCHAR(63) NOT NULL, 
	revision BIGINT NOT NULL, 
	PRIMARY KEY (name), 
	FOREIGN KEY(app) REFERENCES apps (name)
);
CREATE INDEX ix_domains_app ON domains (app);
CREATE TABLE endpoints (
	app VARCHAR(63) NOT NULL, 
	address VARCHAR(39) NOT NULL, 
	port INTEGER NOT NULL, 
	node VARCHAR(63) NOT NULL, 
	weight INTEGER NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	revision BIGINT NOT NULL, 
	PRIMARY KEY (app, address, port), 
	CONSTRAINT uq_endpoints_address_port UNIQUE (address, port), 
	FOREIGN KEY(app) REFERENCES apps (name)
);
CREATE INDEX ix_endpoints_node ON endpoints (node);
INSERT INTO revision (id, value) VALUES (1, 0);
INSERT INTO publisher (id, holder, fence, lease_until, forced_through, epoch) VALUES (1, '', 0, 0.0, 0, '');
INSERT INTO schema_version (version) VALUES (5);
