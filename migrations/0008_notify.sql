-- notify: external channels (SMS, WeChat Work, email) driven by the event stream.
-- Templates and rules are data admins edit; deliveries are the queue and the log at once: one row per
-- (event, recipient, channel), claimed by workers in every process with FOR UPDATE SKIP LOCKED.

-- Templates: {placeholders} in Chinese text. SMS providers take only registered templates, so an SMS template
-- also names the provider's template code and the placeholders it takes, in order.
CREATE TABLE notify_templates (
    name              text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,64}$'),
    description       text NOT NULL DEFAULT '',
    title             text NOT NULL DEFAULT '',       -- email subject
    body              text NOT NULL,
    provider_template text NOT NULL DEFAULT '',       -- Alibaba TemplateCode / Tencent TemplateId
    provider_params   text[] NOT NULL DEFAULT '{}',   -- placeholder names, in the registered template's order
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        bigint
);

-- Rules: an event topic (optionally only to one status, or from some ticket sources) → a recipient over a
-- channel with a template.
CREATE TABLE notify_rules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic       text NOT NULL,
    to_status   text NOT NULL DEFAULT '',
    sources     text[] NOT NULL DEFAULT '{}',
    recipient   text NOT NULL CHECK (recipient IN ('caller', 'unit_group', 'unit_head', 'unit_liaison')),
    channel     text NOT NULL CHECK (channel IN ('sms', 'wecom_robot', 'wecom_app', 'email')),
    template    text NOT NULL REFERENCES notify_templates (name),
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  bigint,
    UNIQUE (topic, to_status, recipient, channel)
);

-- Where each unit is reached. Phones are sealed (pii, field "phone"); only the masked form is readable.
CREATE TABLE notify_unit_channels (
    unit_id            bigint PRIMARY KEY REFERENCES units (id),
    robot_webhook      text NOT NULL DEFAULT '',
    head_wecom_user    text NOT NULL DEFAULT '',
    head_phone_sealed  bytea,
    head_phone_masked  text NOT NULL DEFAULT '',
    liaison_phone_sealed bytea,
    liaison_phone_masked text NOT NULL DEFAULT '',
    email              text NOT NULL DEFAULT '',
    updated_at         timestamptz NOT NULL DEFAULT now(),
    updated_by         bigint
);

-- Callers who asked for no SMS, found by the keyed lookup hash of the number.
CREATE TABLE notify_optouts (
    phone_hash   bytea PRIMARY KEY,
    phone_masked text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   bigint
);

CREATE TABLE notify_deliveries (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          text NOT NULL,          -- the Redis stream entry id, or digest:<unit>:<day>
    topic             text NOT NULL,
    ticket_id         bigint,
    unit_id           bigint,
    rule_id           bigint,
    recipient         text NOT NULL,          -- caller | unit:<id>:group | unit:<id>:head | unit:<id>:liaison
    channel           text NOT NULL CHECK (channel IN ('sms', 'wecom_robot', 'wecom_app', 'email')),
    address           text NOT NULL DEFAULT '', -- webhook URL, WeChat Work user id or email; '' for phones
    address_sealed    bytea,                  -- a phone number, sealed; opened only to send
    address_hash      bytea,                  -- lookup hash of the phone (daily cap)
    address_masked    text NOT NULL DEFAULT '',
    template          text NOT NULL,
    title             text NOT NULL DEFAULT '',
    body              text NOT NULL,
    provider_template text NOT NULL DEFAULT '',
    params            jsonb NOT NULL DEFAULT '[]', -- [[name, value], ...] for registered SMS templates
    idem_key          text NOT NULL,          -- the same on every attempt: sent to providers that honour it
    status            text NOT NULL CHECK (status IN ('pending', 'sent', 'dead', 'suppressed')),
    reason            text NOT NULL DEFAULT '', -- why suppressed (opt-out, daily cap)
    attempts          integer NOT NULL DEFAULT 0,
    budget_from       integer NOT NULL DEFAULT 0, -- attempts before the current retry budget (a manual retry resets it)
    next_at           timestamptz NOT NULL,   -- due time; while claimed, the end of the claim's lease
    event_at          timestamptz NOT NULL,
    last_error        text NOT NULL DEFAULT '',
    provider_ref      text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    UNIQUE (event_id, recipient, channel)
);
CREATE INDEX notify_deliveries_due_idx ON notify_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX notify_deliveries_status_idx ON notify_deliveries (status, id DESC);
CREATE INDEX notify_deliveries_ticket_idx ON notify_deliveries (ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX notify_deliveries_cap_idx ON notify_deliveries (address_hash, created_at) WHERE address_hash IS NOT NULL;

-- Every attempt: started when claimed, finished when the answer was recorded. An attempt that never finished
-- is a process that died in between; its delivery is retried with the same idempotency key.
CREATE TABLE notify_attempts (
    delivery_id  bigint NOT NULL REFERENCES notify_deliveries (id) ON DELETE CASCADE,
    n            integer NOT NULL,
    idem_key     text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    ok           boolean,
    error        text NOT NULL DEFAULT '',
    provider_ref text NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, n)
);

-- One daily digest per day whatever the number of processes: the process that inserts the day writes the
-- digest deliveries in the same transaction.
CREATE TABLE notify_digests (
    day     date PRIMARY KEY,
    done_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO notify_templates (name, description, title, body, provider_template, provider_params) VALUES
('caller_created', '受理短信（致来电群众）', '',
 '您反映的问题已受理，工单号{number}，查询码{query_code}。可凭工单号和查询码在{query_url}或拨打12345查询办理进度。',
 'SMS_HOTLINE_CREATED', '{number,query_code,query_url}'),
('caller_replied', '办结答复短信（致来电群众）', '',
 '您反映的问题（工单号{number}）已办结答复，可凭查询码{query_code}在{query_url}查看答复，近期我们将回访。',
 'SMS_HOTLINE_REPLIED', '{number,query_code,query_url}'),
('unit_dispatched', '派单通知（单位群）', '',
 E'### 新工单待签收\n> 工单号：{number}\n> 类别：{category}（{kind}）\n> 紧急程度：{urgency}\n> 签收期限：<font color="warning">{due_at}</font>\n\n请及时登录系统签收办理。',
 '', '{}'),
('unit_dispatched_sms', '派单短信（单位联络人）', '',
 '【派单】工单{number}（{category}）已派至{unit}，请于{due_at}前签收。',
 'SMS_HOTLINE_DISPATCHED', '{number,category,due_at}'),
('unit_urged', '催办通知（单位负责人）', '',
 E'### 催办通知\n> 工单号：{number}\n> 承办单位：{unit}\n> 当前期限：{due_at}\n\n请加快办理。',
 '', '{}'),
('unit_supervised', '督办通知（单位负责人）', '',
 E'### <font color="warning">督办通知</font>\n> 工单号：{number}\n> 承办单位：{unit}\n> 当前期限：{due_at}\n\n本工单已列入督办，请负责人亲自过问。',
 '', '{}'),
('sla_yellow', '黄牌预警', '',
 E'### <font color="warning">黄牌预警</font>\n> 工单号：{number}\n> 承办单位：{unit}\n> {due_kind}期限：{due_at}\n\n即将超期，请抓紧办理。',
 '', '{}'),
('sla_red', '红牌超期', '',
 E'### <font color="warning">红牌超期</font>\n> 工单号：{number}\n> 承办单位：{unit}\n> {due_kind}期限：{due_at}\n\n已超期，请立即办理并说明情况。',
 '', '{}'),
('unit_reopened', '重办通知（单位群）', '',
 E'### 重办通知\n> 工单号：{number}\n> 承办单位：{unit}\n\n群众回访不满意，工单已重新派至本单位，请重新办理。',
 '', '{}'),
('digest_email', '每日提醒（邮件）', '{unit} 每日工单提醒 {date}',
 E'{unit}：\n\n截至{time}，本单位待签收 {pending} 件，今日到期 {due_today} 件，已超期 {overdue} 件。\n请登录系统及时处理。\n\n（本邮件由12345热线工单系统自动发送）',
 '', '{}'),
('digest_robot', '每日提醒（单位群）', '',
 E'### {unit} 每日工单提醒 {date}\n> 待签收：**{pending}** 件\n> 今日到期：**{due_today}** 件\n> 已超期：<font color="warning">{overdue}</font> 件',
 '', '{}');

INSERT INTO notify_rules (topic, to_status, sources, recipient, channel, template, enabled) VALUES
('ticket.created', '', '{phone,voicemail}', 'caller', 'sms', 'caller_created', true),
('ticket.dispatch', '', '{}', 'unit_group', 'wecom_robot', 'unit_dispatched', true),
('ticket.dispatch', '', '{}', 'unit_liaison', 'sms', 'unit_dispatched_sms', false),
('ticket.urge', '', '{}', 'unit_head', 'wecom_app', 'unit_urged', true),
('ticket.supervise', '', '{}', 'unit_head', 'wecom_app', 'unit_supervised', true),
('sla.yellow', '', '{}', 'unit_group', 'wecom_robot', 'sla_yellow', true),
('sla.yellow', '', '{}', 'unit_head', 'wecom_app', 'sla_yellow', true),
('sla.red', '', '{}', 'unit_group', 'wecom_robot', 'sla_red', true),
('sla.red', '', '{}', 'unit_head', 'wecom_app', 'sla_red', true),
('ticket.reply', '', '{}', 'caller', 'sms', 'caller_replied', true),
('ticket.reopen', '', '{}', 'unit_group', 'wecom_robot', 'unit_reopened', true),
('ticket.callback_result', 'signed', '{}', 'unit_group', 'wecom_robot', 'unit_reopened', true),
('digest.daily', '', '{}', 'unit_head', 'email', 'digest_email', true),
('digest.daily', '', '{}', 'unit_group', 'wecom_robot', 'digest_robot', true);
