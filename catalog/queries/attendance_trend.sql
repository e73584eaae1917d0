-- Attendance rate by ISO week for every course (suppressed cells stay empty).
SELECT course_id, iso_week, week_start, attendance_rate, students
FROM curated.attendance_weekly
ORDER BY course_id, week_start
