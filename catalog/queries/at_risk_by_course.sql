-- At-risk students per course and level.
SELECT course_id, risk_level, count(*) AS students
FROM curated.at_risk_students
GROUP BY course_id, risk_level
ORDER BY course_id, risk_level
