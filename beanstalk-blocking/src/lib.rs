//! beanstalkd client over blocking. Work in progress: see the project's issues.
