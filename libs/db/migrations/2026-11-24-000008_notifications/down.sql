DROP TABLE system_alerts; DROP TABLE deliveries; DROP TABLE notification_preferences; DROP TABLE notifications;
