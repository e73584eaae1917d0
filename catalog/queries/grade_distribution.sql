-- Weighted-grade distribution (A-F) of one course. Parameter: course.
SELECT
  CASE
    WHEN weighted_grade >= 90 THEN 'A'
    WHEN weighted_grade >= 80 THEN 'B'
    WHEN weighted_grade >= 70 THEN 'C'
    WHEN weighted_grade >= 60 THEN 'D'
    ELSE 'F'
  END AS grade,
  count(*) AS students
FROM curated.student_course_performance
WHERE course_id = ${course} AND weighted_grade IS NOT NULL
GROUP BY 1
ORDER BY 1
