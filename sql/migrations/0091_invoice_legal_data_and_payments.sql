-- 0091 invoices with legal data, due dates, EU reverse charge, and payments allocated
-- to invoices (docs/invoices.md).
--
-- * Customers: a display name (any text: "Nordic Télécom AB"; `name` stays the
--   identifier of provisioning files and logs), legal name, postal address, VAT ID and
--   payment terms in days (NULL: the settings' default).
-- * Settings: the operator's legal block beyond name/address/VAT ID (registration,
--   bank details), default payment terms, the reminder interval.
-- * Invoices copy the customer's legal data when built (customer_snapshot), and get
--   their due date and payment terms when issued, in the very UPDATE that issues them
--   (the immutability trigger of 0080 only refuses changes to issued rows). Reverse
--   charge is decided when the document is built and kept with the legal mention.
-- * Payments: a ledger entry of kind payment or topup is allocated to issued invoices
--   of the same customer (billing.payment_allocations). Neither the entry nor the
--   invoice can receive more than it has: checked under row locks by a trigger.
--   The payment status (issued, partly paid, paid, overdue) is derived from the
--   allocations and the credit notes, never stored, so issued invoices stay immutable.

ALTER TABLE billing.customers
    ADD COLUMN display_name text NULL
        CONSTRAINT ck_customers_display_name CHECK (length(btrim(display_name)) BETWEEN 1 AND 200 AND display_name !~ '[[:cntrl:]]'),
    ADD COLUMN legal_name text NULL
        CONSTRAINT ck_customers_legal_name CHECK (length(btrim(legal_name)) BETWEEN 1 AND 200 AND legal_name !~ '[[:cntrl:]]'),
    ADD COLUMN address text NULL
        CONSTRAINT ck_customers_address CHECK (length(address) <= 1000),
    -- Two letters of the country (EL for Greece), then 2 to 12 letters or digits.
    ADD COLUMN vat_id text NULL
        CONSTRAINT ck_customers_vat_id CHECK (vat_id ~ '^[A-Z]{2}[0-9A-Z+*]{2,12}$'),
    ADD COLUMN payment_terms_days integer NULL
        CONSTRAINT ck_customers_payment_terms_days CHECK (payment_terms_days BETWEEN 0 AND 365);

ALTER TABLE billing.settings
    ADD COLUMN company_registration text NOT NULL DEFAULT ''
        CONSTRAINT ck_settings_company_registration CHECK (length(company_registration) <= 1000),
    ADD COLUMN company_bank_details text NOT NULL DEFAULT ''
        CONSTRAINT ck_settings_company_bank_details CHECK (length(company_bank_details) <= 1000),
    ADD COLUMN payment_terms_days integer NOT NULL DEFAULT 30
        CONSTRAINT ck_settings_payment_terms_days CHECK (payment_terms_days BETWEEN 0 AND 365),
    -- A reminder when an invoice is overdue, then every N days while it stays open; 0 = none.
    ADD COLUMN reminder_interval_days integer NOT NULL DEFAULT 14
        CONSTRAINT ck_settings_reminder_interval_days CHECK (reminder_interval_days BETWEEN 0 AND 365);

ALTER TABLE billing.invoices
    ADD COLUMN customer_snapshot jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN payment_terms_days integer NULL,
    ADD COLUMN due_date date NULL,
    ADD COLUMN reverse_charge boolean NOT NULL DEFAULT false,
    ADD COLUMN tax_note text NULL,
    ADD CONSTRAINT ck_invoices_reverse_charge_no_tax CHECK (NOT reverse_charge OR tax_rate = 0);
-- Overdue lists and reminders read open invoices by due date.
CREATE INDEX ix_invoices_due_date ON billing.invoices (due_date) WHERE kind = 'invoice' AND status = 'issued';

CREATE TABLE billing.payment_allocations (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT pk_payment_allocations PRIMARY KEY,
    ledger_entry_id  bigint NOT NULL CONSTRAINT fk_payment_allocations_ledger_entry_id_ledger REFERENCES billing.ledger (id) ON DELETE RESTRICT,
    invoice_id       bigint NOT NULL CONSTRAINT fk_payment_allocations_invoice_id_invoices REFERENCES billing.invoices (id) ON DELETE RESTRICT,
    amount           billing.money NOT NULL CONSTRAINT ck_payment_allocations_amount CHECK (amount > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NULL,
    CONSTRAINT uq_payment_allocations_ledger_entry_id_invoice_id UNIQUE (ledger_entry_id, invoice_id)
);
CREATE INDEX ix_payment_allocations_invoice_id ON billing.payment_allocations (invoice_id);

CREATE FUNCTION billing_private.tg_payment_allocations__check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_entry    billing.ledger%ROWTYPE;
    v_invoice  billing.invoices%ROWTYPE;
    v_used     numeric;
    v_credited numeric;
    v_paid     numeric;
BEGIN
    -- Lock both rows: two allocations of one payment or one invoice queue here.
    SELECT * INTO v_entry FROM billing.ledger WHERE id = NEW.ledger_entry_id FOR UPDATE;
    SELECT * INTO v_invoice FROM billing.invoices WHERE id = NEW.invoice_id FOR UPDATE;
    IF v_entry.kind NOT IN ('payment', 'topup') THEN
        RAISE EXCEPTION 'ledger entry % is a %, not a payment', v_entry.id, v_entry.kind
            USING ERRCODE = 'check_violation';
    END IF;
    IF v_invoice.kind <> 'invoice' OR v_invoice.status <> 'issued' THEN
        RAISE EXCEPTION 'payments are allocated to issued invoices only, not to % %', v_invoice.status, v_invoice.kind
            USING ERRCODE = 'check_violation';
    END IF;
    IF v_entry.customer_id <> v_invoice.customer_id THEN
        RAISE EXCEPTION 'the payment and invoice % belong to different customers', v_invoice.number
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT coalesce(sum(amount), 0) INTO v_used FROM billing.payment_allocations WHERE ledger_entry_id = v_entry.id;
    IF v_used + NEW.amount > v_entry.amount THEN
        RAISE EXCEPTION 'payment % has % left to allocate, not %', v_entry.id, v_entry.amount - v_used, NEW.amount
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT coalesce(sum(gross_total), 0) INTO v_credited FROM billing.invoices
     WHERE corrects_invoice_id = v_invoice.id AND kind = 'credit_note';
    SELECT coalesce(sum(amount), 0) INTO v_paid FROM billing.payment_allocations WHERE invoice_id = v_invoice.id;
    IF v_paid + NEW.amount > v_invoice.gross_total - v_credited THEN
        RAISE EXCEPTION 'invoice % has % open, not %', v_invoice.number, v_invoice.gross_total - v_credited - v_paid, NEW.amount
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tg_payment_allocations__check BEFORE INSERT ON billing.payment_allocations
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_payment_allocations__check();

-- Allocations are facts of accounting: correct them with new entries, never by editing.
CREATE FUNCTION billing_private.tg_payment_allocations__immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payment allocations cannot be changed or deleted'
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER tg_payment_allocations__immutable BEFORE UPDATE OR DELETE ON billing.payment_allocations
    FOR EACH ROW EXECUTE FUNCTION billing_private.tg_payment_allocations__immutable();

-- What is paid and still open on each issued invoice (credit notes reduce what is due).
CREATE VIEW billing.invoice_balances AS
SELECT i.id AS invoice_id, i.customer_id, i.gross_total, i.due_date,
       coalesce(cn.credited, 0)::numeric(20, 2) AS credited,
       coalesce(pa.paid, 0)::numeric(20, 6) AS paid,
       (i.gross_total - coalesce(cn.credited, 0) - coalesce(pa.paid, 0))::numeric(20, 6) AS open_amount
  FROM billing.invoices i
  LEFT JOIN (SELECT corrects_invoice_id, sum(gross_total) AS credited FROM billing.invoices
              WHERE kind = 'credit_note' GROUP BY corrects_invoice_id) cn ON cn.corrects_invoice_id = i.id
  LEFT JOIN (SELECT invoice_id, sum(amount) AS paid FROM billing.payment_allocations GROUP BY invoice_id) pa
         ON pa.invoice_id = i.id
 WHERE i.kind = 'invoice' AND i.status = 'issued';
