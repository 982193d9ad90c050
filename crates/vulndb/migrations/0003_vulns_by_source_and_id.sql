-- An import merges a record into the one of the same id its source gave before (Azure
-- Linux's OVAL definitions of one CVE), looking it up by source and id as records are
-- stored; this index also serves the look-ups by source alone, which vulns_source did.
CREATE INDEX vulns_source_id ON vulns (source_id, vuln_id);
DROP INDEX vulns_source;
