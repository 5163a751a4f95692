//! beanstalkd client over tokio. Work in progress: see the project's issues.
