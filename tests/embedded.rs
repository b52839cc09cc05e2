//! The embedded API in-process: a `klein::embedded::Node` started inside the test, called from
//! plain threads (blocking forms) and from async code, through the same path the RESP server
//! uses; the data survives stopping and starting the node on the same directory.

use klein::config::{Number, Settings};
use klein::embedded::{Consistency, Error, Limits, Node, Reply};

fn config(dir: &std::path::Path) -> klein::config::Config {
    let settings = Settings {
        data_dir: Some(dir.to_path_buf()),
        cores: Some(Number::Text("2".into())),
        ..Settings::default()
    };
    Settings::resolve(None, settings, 2).expect("a valid configuration")
}

#[test]
fn an_embedded_node_serves_threads_and_async_callers_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&config(dir.path()), Limits::default()).expect("the node starts");
    assert_eq!(node.address(), None, "no RESP listener unless asked for");
    let handle = node.handle();

    // Blocking calls from several plain threads at once.
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                for index in 0..50 {
                    let key = format!("t{thread}:{index}");
                    handle.set_blocking(key.as_bytes(), b"v").unwrap();
                    let value = handle.get_blocking(key.as_bytes(), Consistency::Linearizable);
                    assert_eq!(value.unwrap().as_deref(), Some(&b"v"[..]));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }

    // Async calls (any executor: here futures-lite's).
    futures_lite::future::block_on(async {
        assert!(handle.compare_and_set(b"cas", None, b"1").await.unwrap());
        assert!(!handle.compare_and_set(b"cas", None, b"2").await.unwrap());
        assert!(!handle.compare_and_set(b"cas", Some(b"0"), b"2").await.unwrap());
        assert!(handle.compare_and_set(b"cas", Some(b"1"), b"2").await.unwrap());
        assert!(!handle.compare_and_set(b"cas", Some(b"1"), b"3").await.unwrap());
        assert!(!handle.compare_and_set(b"absent", Some(b"1"), b"3").await.unwrap());
        let now = handle.get(b"cas", Consistency::Linearizable).await.unwrap();
        assert_eq!(now.as_deref(), Some(&b"2"[..]));
        assert!(handle.delete(b"cas").await.unwrap());
        assert!(!handle.delete(b"cas").await.unwrap());
        let reply = handle.execute(&[b"INCRBY", b"n", b"5"], Consistency::Linearizable).await;
        assert_eq!(reply, Ok(Reply::Integer(5)));
        let reply = handle.execute(&[b"HSET", b"h", b"f", b"x"], Consistency::Linearizable).await;
        assert_eq!(reply, Ok(Reply::Integer(1)));
        let wrong = handle.execute(&[b"INCR", b"h"], Consistency::Linearizable).await;
        assert!(matches!(wrong, Ok(Reply::Error(ref text)) if text.starts_with("WRONGTYPE")));
        let unknown = handle.execute(&[b"NOPE"], Consistency::Linearizable).await;
        assert!(
            matches!(unknown, Err(Error::Refused(ref text)) if text.starts_with("ERR unknown"))
        );
        let stale = handle.get(b"t0:0", Consistency::Stale).await.unwrap();
        assert_eq!(stale.as_deref(), Some(&b"v"[..]));
    });
    node.stop().expect("the node stops in order");

    let node = Node::start(&config(dir.path()), Limits::default()).expect("the node restarts");
    let handle = node.handle();
    for thread in 0..4 {
        for index in 0..50 {
            let key = format!("t{thread}:{index}");
            let value = handle.get_blocking(key.as_bytes(), Consistency::Linearizable).unwrap();
            assert_eq!(value.as_deref(), Some(&b"v"[..]), "{key}");
        }
    }
    let reply = handle.execute_blocking(&[b"GET", b"n"], Consistency::Lease).unwrap();
    assert_eq!(reply, Reply::Bulk(b"5".to_vec()));
}
