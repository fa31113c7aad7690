-- notify: a co-unit's own alert about its late opinion (协办意见临期 / 超期). The sweeper's sla.yellow / sla.red for
-- a co-opinion names the co-unit (notify_unit_id) and its deadline (co_due_at); notify matches such an event under
-- its own kind, sla.co_yellow / sla.co_red, so it gets these texts, written to the co-unit (it owes the lead unit an
-- opinion), not the lead unit's overdue notice. {lead_unit} is the ticket's lead unit (主办单位); {due_at} the
-- co-unit's own deadline. One template per level and channel family: markdown for WeChat Work (robot and app),
-- plain text with a subject for e-mail, and a registered template for SMS kept to one segment (66 characters
-- with the preview's sample values, the co-unit named by the 协办 headline and its opinion).
INSERT INTO notify_templates (name, description, title, body, provider_template, provider_params) VALUES
('co_opinion_yellow', '协办意见临期提醒（协办单位）', '',
 E'### <font color="warning">协办意见临期提醒</font>\n> 工单号：{number}\n> 类别：{category}（{kind}）\n> 协办单位：{unit}（本单位）\n> 主办单位：{lead_unit}\n> 协办意见期限：{due_at}\n\n主办单位正在等待贵单位的协办意见，期限将至，请尽快在系统中提交协办意见。',
 '', '{}'),
('co_opinion_red', '协办意见超期（协办单位）', '',
 E'### <font color="warning">协办意见超期</font>\n> 工单号：{number}\n> 类别：{category}（{kind}）\n> 协办单位：{unit}（本单位）\n> 主办单位：{lead_unit}\n> 协办意见期限：{due_at}\n\n贵单位的协办意见已超期，主办单位正在等待，请立即在系统中提交协办意见。',
 '', '{}'),
('co_opinion_yellow_email', '协办意见临期提醒（协办单位，邮件）', '协办意见临期提醒：工单{number}',
 E'{unit}（协办单位）：\n\n工单{number}（{category}，{kind}）由{lead_unit}主办，需要贵单位出具协办意见。\n协办意见期限：{due_at}，期限将至。\n请尽快在系统中提交协办意见，主办单位收到后方可答复办结。\n\n（本邮件由12345热线工单系统自动发送）',
 '', '{}'),
('co_opinion_red_email', '协办意见超期（协办单位，邮件）', '协办意见超期：工单{number}',
 E'{unit}（协办单位）：\n\n工单{number}（{category}，{kind}）由{lead_unit}主办，需要贵单位出具协办意见。\n协办意见期限：{due_at}，现已超期。\n请立即在系统中提交协办意见，主办单位收到后方可答复办结。\n\n（本邮件由12345热线工单系统自动发送）',
 '', '{}'),
('co_opinion_yellow_sms', '协办意见临期短信（协办单位联络人）', '',
 '【协办临期】工单{number}协办意见将于{due_at}到期，主办{lead_unit}在等，请在系统中提交协办意见。',
 'SMS_HOTLINE_CO_YELLOW', '{number,lead_unit,due_at}'),
('co_opinion_red_sms', '协办意见超期短信（协办单位联络人）', '',
 '【协办超期】工单{number}协办意见已于{due_at}到期，主办{lead_unit}在等，请在系统中提交协办意见。',
 'SMS_HOTLINE_CO_RED', '{number,lead_unit,due_at}');

-- The co-unit is reached on every channel its SLA alerts already use: each sla.yellow / sla.red rule gets its
-- sla.co_* twin (same recipient, channel, filters and on/off) with the co-opinion text for that channel.
INSERT INTO notify_rules (topic, to_status, sources, recipient, channel, template, enabled)
SELECT 'sla.co_' || substr(topic, 5), to_status, sources, recipient, channel,
       'co_opinion_' || substr(topic, 5) || CASE channel WHEN 'sms' THEN '_sms' WHEN 'email' THEN '_email' ELSE '' END,
       enabled
FROM notify_rules WHERE topic IN ('sla.yellow', 'sla.red')
ORDER BY id
ON CONFLICT (topic, to_status, recipient, channel) DO NOTHING;

-- SMS to the liaison and e-mail to the head are there for admins to switch on, off by default as the dispatch SMS.
INSERT INTO notify_rules (topic, to_status, sources, recipient, channel, template, enabled) VALUES
('sla.co_yellow', '', '{}', 'unit_liaison', 'sms', 'co_opinion_yellow_sms', false),
('sla.co_red', '', '{}', 'unit_liaison', 'sms', 'co_opinion_red_sms', false),
('sla.co_yellow', '', '{}', 'unit_head', 'email', 'co_opinion_yellow_email', false),
('sla.co_red', '', '{}', 'unit_head', 'email', 'co_opinion_red_email', false)
ON CONFLICT (topic, to_status, recipient, channel) DO NOTHING;
