-- 0080 invoices, credit notes and prepaid statements (docs/invoices.md).
--
-- * A document is a draft until issued; issuing assigns the next number of its series
--   for the year (gap-free: the counter row is locked by the issuing transaction, so a
--   rollback gives the number back and two issuers wait for each other).
-- * Issued documents and their lines are immutable (triggers below): a correction is a
--   credit note, itself an issued document with a ledger 'credit_note' entry.
-- * Money on documents is numeric(20, 2): the rounding rules of docs/invoices.md apply
--   once, when the document is built; amount_exact keeps the 6-decimal sum of a line.

-- The company logo shown on PDFs: a file under static/ (no network fetches).
ALTER TABLE billing.settings ADD COLUMN company_logo text NOT NULL DEFAULT 'img/logo.svg'
    CONSTRAINT ck_settings_company_logo CHECK (company_logo ~ '^([A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.(png|svg|jpg|jpeg)$' OR company_logo = '');

CREATE TABLE billing.invoice_counters (
    series       text NOT NULL CONSTRAINT ck_invoice_counters_series CHECK (series IN ('INV', 'CN', 'ST')),
    year         integer NOT NULL CONSTRAINT ck_invoice_counters_year CHECK (year BETWEEN 2000 AND 9999),
    last_number  integer NOT NULL CONSTRAINT ck_invoice_counters_last_number CHECK (last_number >= 0),
    CONSTRAINT pk_invoice_counters PRIMARY KEY (series, year)
);

CREATE TABLE billing.invoices (
    id                   bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_invoices PRIMARY KEY,
    customer_id          bigint NOT NULL CONSTRAINT fk_invoices_customer_id_customers REFERENCES billing.customers (id) ON DELETE RESTRICT,
    kind                 text NOT NULL CONSTRAINT ck_invoices_kind CHECK (kind IN ('invoice', 'statement', 'credit_note')),
    status               text NOT NULL DEFAULT 'draft' CONSTRAINT ck_invoices_status CHECK (status IN ('draft', 'issued')),
    series               text NULL,
    year                 integer NULL,
    seq                  integer NULL,
    number               text NULL CONSTRAINT uq_invoices_number UNIQUE,
    period_start         date NOT NULL,
    period_end           date NOT NULL,          -- exclusive
    currency             billing.currency NOT NULL,
    tax_rate             numeric(6, 4) NOT NULL CONSTRAINT ck_invoices_tax_rate CHECK (tax_rate >= 0 AND tax_rate < 1),
    net_total            numeric(20, 2) NOT NULL DEFAULT 0,
    tax_total            numeric(20, 2) NOT NULL DEFAULT 0,
    gross_total          numeric(20, 2) NOT NULL DEFAULT 0,
    payments_total       numeric(20, 2) NOT NULL DEFAULT 0,
    credits_total        numeric(20, 2) NOT NULL DEFAULT 0,
    adjustments_total    numeric(20, 2) NOT NULL DEFAULT 0,
    opening_balance      billing.money NOT NULL DEFAULT 0,
    closing_balance      billing.money NOT NULL DEFAULT 0,
    customer_name        text NOT NULL,
    customer_email       text NULL,
    seller               jsonb NOT NULL DEFAULT '{}'::jsonb,   -- company details at issue time
    corrects_invoice_id  bigint NULL CONSTRAINT fk_invoices_corrects_invoice_id_invoices REFERENCES billing.invoices (id) ON DELETE RESTRICT,
    ledger_entry_id      bigint NULL CONSTRAINT fk_invoices_ledger_entry_id_ledger REFERENCES billing.ledger (id) ON DELETE RESTRICT,
    note                 text NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    issued_at            timestamptz NULL,
    issued_by            text NULL,
    CONSTRAINT ck_invoices_period CHECK (period_end > period_start),
    CONSTRAINT ck_invoices_issued_has_number CHECK ((status = 'issued') = (number IS NOT NULL AND issued_at IS NOT NULL)),
    CONSTRAINT ck_invoices_credit_note_corrects CHECK ((kind = 'credit_note') = (corrects_invoice_id IS NOT NULL)),
    CONSTRAINT uq_invoices_series_year_seq UNIQUE (series, year, seq)
);
-- One invoice (or statement) per customer and period: the monthly run is idempotent.
CREATE UNIQUE INDEX uq_invoices_customer_period ON billing.invoices (customer_id, kind, period_start, period_end)
    WHERE kind <> 'credit_note';
CREATE INDEX ix_invoices_customer_id ON billing.invoices (customer_id, period_start);
CREATE INDEX ix_invoices_corrects_invoice_id ON billing.invoices (corrects_invoice_id) WHERE corrects_invoice_id IS NOT NULL;

CREATE TABLE billing.invoice_lines (
    id            bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_invoice_lines PRIMARY KEY,
    invoice_id    bigint NOT NULL CONSTRAINT fk_invoice_lines_invoice_id_invoices REFERENCES billing.invoices (id) ON DELETE CASCADE,
    position      integer NOT NULL,
    kind          text NOT NULL CONSTRAINT ck_invoice_lines_kind CHECK (kind IN ('calls', 'correction')),
    description   text NOT NULL,
    prefix        text NULL,
    calls         integer NOT NULL DEFAULT 0,
    seconds       bigint NOT NULL DEFAULT 0,        -- billed seconds
    amount_exact  billing.money NOT NULL DEFAULT 0,  -- sum of the 6-decimal charges
    amount        numeric(20, 2) NOT NULL,          -- amount_exact rounded half-up
    CONSTRAINT uq_invoice_lines_invoice_id_position UNIQUE (invoice_id, position)
);

-- The PDF of an issued document, rendered once (from the document's own snapshot).
CREATE TABLE billing.invoice_documents (
    invoice_id  bigint CONSTRAINT pk_invoice_documents PRIMARY KEY CONSTRAINT fk_invoice_documents_invoice_id_invoices REFERENCES billing.invoices (id) ON DELETE RESTRICT,
    pdf         bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION billing_private.tg_invoices__immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'issued' THEN
        RAISE EXCEPTION 'invoice % is issued and cannot be changed: issue a credit note instead', OLD.number
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER tg_invoices__immutable BEFORE UPDATE OR DELETE ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_invoices__immutable();

CREATE FUNCTION billing_private.tg_invoice_lines__immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_number text;
BEGIN
    SELECT number INTO v_number FROM billing.invoices
     WHERE id = CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END
       AND status = 'issued';
    IF FOUND THEN
        RAISE EXCEPTION 'invoice % is issued: its lines cannot be changed', v_number
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER tg_invoice_lines__immutable BEFORE INSERT OR UPDATE OR DELETE ON billing.invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_invoice_lines__immutable();

CREATE FUNCTION billing_private.tg_invoice_documents__immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the PDF of an issued document is kept as rendered'
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER tg_invoice_documents__immutable BEFORE UPDATE OR DELETE ON billing.invoice_documents
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_invoice_documents__immutable();
