package com.example.shout;

import com.example.greeting.Greeting;

/** Depends on the greeting jar, so its pom lists it. */
public final class Shout {
    private Shout() {}

    public static String hello(String name) {
        return Greeting.hello(name).toUpperCase();
    }
}
