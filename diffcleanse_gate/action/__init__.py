"""The GitHub Action's pieces: inputs into a job, and the job summary, SARIF and annotations out of a report."""
