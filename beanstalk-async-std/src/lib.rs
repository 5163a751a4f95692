//! beanstalkd client over async-std. Work in progress: see the project's issues.
