-- Correlation between attendance rate and weighted grade, per course.
SELECT a.course_id,
       count(*) AS students,
       corr(a.attendance_rate, p.weighted_grade) AS correlation
FROM curated.student_course_attendance a
JOIN curated.student_course_performance p
  ON a.student_id = p.student_id AND a.course_id = p.course_id
WHERE p.weighted_grade IS NOT NULL
GROUP BY a.course_id
ORDER BY a.course_id
