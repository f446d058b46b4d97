-- The tenants store at schema version 1 (SQLite), as sixpod 0.1 created it.
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
	PRIMARY KEY (id)
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
INSERT INTO revision (id, value) VALUES (1, 0);
INSERT INTO publisher (id, holder, fence, lease_until, forced_through) VALUES (1, '', 0, 0.0, 0);
INSERT INTO schema_version (version) VALUES (1);
