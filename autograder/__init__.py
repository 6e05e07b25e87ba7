"""The course's grading harness and command line (``course``). Never imported by course_lib."""
